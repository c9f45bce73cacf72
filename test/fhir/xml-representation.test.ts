import { isDeepStrictEqual } from 'node:util';
import { resourceToXml } from '../../server/fhir/resource-to-xml';
import { xmlToResource, xmlToResourceYielding } from '../../server/fhir/xml-to-resource';
import { hl7ExampleFiles, readHl7Example } from '../support/hl7-examples';

// FHIR.js (npm `fhir`), an XML <-> JSON converter written by others from the same
// definitions: an independent reading of xml.html to check ours against.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Fhir } = require('fhir') as { Fhir: new () => { jsonToXml(json: string): string; xmlToJson(xml: string): string } };
const fhirJs = new Fhir();

const F = 'xmlns="http://hl7.org/fhir"';
const X = 'xmlns="http://www.w3.org/1999/xhtml"';

function outcomeText(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    const e = err as { status?: number; outcome?: { issue: { diagnostics?: string }[] } };
    expect(e.status).toBe(400);
    return e.outcome?.issue[0].diagnostics ?? '';
  }
  throw new Error('expected a 400');
}

describe("HL7's R4 examples", () => {
  const files = hl7ExampleFiles();

  test('every example written as XML reads back as the same resource, compact and pretty', () => {
    const differing: string[] = [];
    for (const file of files) {
      const example = readHl7Example(file);
      for (const pretty of [false, true]) {
        if (!isDeepStrictEqual(xmlToResource(resourceToXml(example as never, pretty)), example)) differing.push(`${file} pretty=${pretty}`);
      }
    }
    expect(files.length).toBeGreaterThan(800);
    expect(differing).toEqual([]);
  });

  test("where FHIR.js reads back its own XML, it reads ours as the example, we read its as the example, and the element order is the same", () => {
    // FHIR.js loses some content on its own round trip (primitive extensions in choice
    // elements, empty divs): those examples cannot judge ours and are left out.
    const judged: string[] = [];
    const disagreements: string[] = [];
    const bodyOf = (xml: string): string =>
      xml
        .replace(/^<\?xml[^>]*\?>/, '')
        .replace(/&#x([0-9A-F]+);/gi, (_, hex: string) => `&#${parseInt(hex, 16)};`)
        .replace(/<(\w+)([^>]*)><\/\1>/g, '<$1$2/>')
        .replace(/<div xmlns="http:\/\/www.w3.org\/1999\/xhtml"[\s\S]*?<\/div>(?=<\/text>)/g, '<div/>');
    for (const file of files) {
      const example = readHl7Example(file);
      let theirs: string;
      try {
        theirs = fhirJs.jsonToXml(JSON.stringify(example));
        if (!isDeepStrictEqual(JSON.parse(fhirJs.xmlToJson(theirs)), example)) continue;
      } catch {
        continue;
      }
      judged.push(file);
      const ours = resourceToXml(example as never);
      if (!isDeepStrictEqual(JSON.parse(fhirJs.xmlToJson(ours)), example)) disagreements.push(`${file}: FHIR.js reads our XML differently`);
      if (!isDeepStrictEqual(xmlToResource(theirs), example)) disagreements.push(`${file}: we read FHIR.js's XML differently`);
      if (bodyOf(ours) !== bodyOf(theirs)) disagreements.push(`${file}: element order or form differs`);
    }
    expect(judged.length).toBeGreaterThan(500);
    expect(disagreements).toEqual([]);
  });
});

describe('the XML form (xml.html)', () => {
  test('elements follow the definition order whatever the JSON order, primitives are value attributes, Element.id and Extension.url attributes', () => {
    const xml = resourceToXml({
      resourceType: 'Patient',
      birthDate: '1974-12-25',
      name: [{ given: ['Peter'], family: 'Chalmers', id: 'n1' }],
      active: true,
      extension: [{ valueString: 'x', url: 'http://example.org/e' }],
      id: 'p1',
    } as never);
    expect(xml).toBe(
      `<?xml version="1.0" encoding="UTF-8"?><Patient ${F}><id value="p1"/><extension url="http://example.org/e"><valueString value="x"/></extension>` +
        '<active value="true"/><name id="n1"><family value="Chalmers"/><given value="Peter"/></name><birthDate value="1974-12-25"/></Patient>'
    );
  });

  test("a primitive's id and extensions come from its _name twin, arrays aligned with nulls both ways", () => {
    const patient = {
      resourceType: 'Patient',
      name: [{ given: ['Peter', null, 'Jim'], _given: [null, { extension: [{ url: 'http://example.org/x', valueCode: 'abc' }] }, { id: 'g3' }] }],
      _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
    };
    const xml = resourceToXml(patient as never);
    expect(xml).toContain(
      '<given value="Peter"/><given><extension url="http://example.org/x"><valueCode value="abc"/></extension></given><given id="g3" value="Jim"/>'
    );
    expect(xml).toContain('<birthDate><extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason"><valueCode value="unknown"/></extension></birthDate>');
    expect(xmlToResource(xml)).toEqual(patient);
  });

  test('values are typed by the definitions: booleans, integers and decimals become JSON booleans and numbers, codes and dates stay strings', () => {
    const read = xmlToResource(
      `<Observation ${F}><status value="final"/><code><text value="t"/></code><valueQuantity><value value="-0.50"/><code value="10"/></valueQuantity>` +
        '<referenceRange><low><value value="1e2"/></low></referenceRange><component><code><text value="c"/></code><valueInteger value="007"/></component>' +
        '<component><code><text value="d"/></code><valueBoolean value="false"/></component></Observation>'
    ) as any;
    expect(read.valueQuantity).toEqual({ value: -0.5, code: '10' });
    expect(read.referenceRange[0].low.value).toBe(100);
    expect(read.component[0].valueInteger).toBe(7);
    expect(read.component[1].valueBoolean).toBe(false);
    expect(read.status).toBe('final');
  });

  test('contained resources and Bundle entries are wrapped in their element, and read back', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ fullUrl: 'urn:uuid:1', resource: { resourceType: 'Patient', contained: [{ resourceType: 'Organization', id: 'o', name: 'O' }], managingOrganization: { reference: '#o' } } }],
    };
    const xml = resourceToXml(bundle as never);
    expect(xml).toContain('<resource><Patient><contained><Organization><id value="o"/><name value="O"/></Organization></contained>');
    expect(xmlToResource(xml)).toEqual(bundle);
  });

  test('line breaks, tabs, quotes and markup in values survive as character references', () => {
    const resource = { resourceType: 'Basic', code: { text: 'a "b" <c> & d\n\te\r\n' } };
    const xml = resourceToXml(resource as never);
    expect(xml).toContain('<text value="a &quot;b&quot; &lt;c&gt; &amp; d&#10;&#9;e&#13;&#10;"/>');
    expect(xmlToResource(xml)).toEqual(resource);
  });

  test('the narrative div is the XHTML as sent, namespace declared on it', () => {
    const div = `<div ${X}><p>a &lt; b<br/><a href="x?y=1&amp;z=2">l</a></p></div>`;
    const xml = `<Patient ${F}><text><status value="generated"/>${div}</text></Patient>`;
    expect((xmlToResource(xml) as any).text.div).toBe(div);
    // A JSON div without the declaration still becomes XHTML in the XML.
    expect(resourceToXml({ resourceType: 'Patient', text: { status: 'generated', div: '<div>x</div>' } } as never)).toContain(`<div ${X}>x</div>`);
  });

  test("comments and attributes in other namespaces (HL7's published examples carry xsi:schemaLocation) are not part of the resource", () => {
    const xml =
      `<?xml version="1.0" encoding="UTF-8"?>\n<!-- an example -->\n<Patient ${F} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir ../../schema/fhir-single.xsd">\n` +
      '  <id value="example"/>\n  <!-- active -->\n  <active value="true"/>\n</Patient>\n';
    expect(xmlToResource(xml)).toEqual({ resourceType: 'Patient', id: 'example', active: true });
  });

  test('a DOCTYPE, unknown elements and attributes, text between elements, another namespace, a repeated singleton and malformed XML are 400s naming them', () => {
    expect(outcomeText(() => xmlToResource(`<!DOCTYPE x [<!ENTITY e "boom">]><Patient ${F}/>`))).toMatch(/DOCTYPE/);
    expect(outcomeText(() => xmlToResource(`<Patient ${F}><colour value="blue"/></Patient>`))).toMatch(/Patient\.colour is not an element/);
    expect(outcomeText(() => xmlToResource(`<Patient ${F}><active value="true" colour="x"/></Patient>`))).toMatch(/Patient\.active has an attribute colour/);
    expect(outcomeText(() => xmlToResource(`<Patient ${F}>hello<active value="true"/></Patient>`))).toMatch(/text "hello"/);
    expect(outcomeText(() => xmlToResource('<Patient xmlns="http://example.org"/>'))).toMatch(/not in the FHIR namespace/);
    expect(outcomeText(() => xmlToResource(`<Patient ${F}><active value="true"/><active value="false"/></Patient>`))).toMatch(/Patient\.active appears more than once/);
    expect(outcomeText(() => xmlToResource(`<Patient ${F}><active value="yes"/></Patient>`))).toMatch(/true or false/);
    expect(outcomeText(() => xmlToResource(`<Patient ${F}><active value="true"></Patient>`))).toMatch(/not well-formed XML/);
    expect(outcomeText(() => xmlToResource(`<Wizard ${F}/>`))).toMatch(/Wizard is not a FHIR R4 resource type/);
    expect(outcomeText(() => xmlToResource(`<Patient ${F}><text><status value="generated"/><div>x</div></text></Patient>`))).toMatch(/XHTML div/);
    expect(outcomeText(() => xmlToResource(`<Patient ${F}><contained/></Patient>`))).toMatch(/holds no resource/);
    expect(outcomeText(() => xmlToResource(`<Patient ${F}><![CDATA[x]]></Patient>`))).toMatch(/CDATA/);
    // Inside the narrative, CDATA is XHTML's business and is kept as sent.
    const div = `<div ${X}><![CDATA[a < b]]></div>`;
    expect((xmlToResource(`<Patient ${F}><text><status value="generated"/>${div}</text></Patient>`) as any).text.div).toBe(div);
  });

  test('a large body is read a chunk at a time, letting other work run between chunks, with the same result (characters outside the BMP across chunk boundaries too)', async () => {
    const bundle = { resourceType: 'Bundle', type: 'collection', entry: hl7ExampleFiles().slice(0, 200).map((file) => ({ resource: readHl7Example(file) })) };
    (bundle.entry[0].resource as any).meta = { tag: [{ display: '😀'.repeat(100_000) }] };
    const xml = resourceToXml(bundle as never);
    expect(xml.length).toBeGreaterThan(1_000_000);
    let turns = 0;
    const counting = setInterval(() => turns++, 0);
    const read = await xmlToResourceYielding(xml);
    clearInterval(counting);
    expect(read).toEqual(bundle);
    expect(turns).toBeGreaterThan(0);
  });

  test('a member the definitions do not know cannot be written as XML and is an error, not dropped', () => {
    expect(() => resourceToXml({ resourceType: 'Patient', colour: 'blue' } as never)).toThrow(/Patient\.colour is not an element/);
  });
});
