import type { HumanName } from '@medplum/fhirtypes';
import { isOperationOutcomeError } from '../core/outcome';
import type { AuthContext } from './auth-exchange';
import type { UserAccount } from './user-store';

/**
 * The OpenID Connect `profile` scope's standard claims (OIDC Core §5.4 and §5.1), taken
 * from the user's FHIR resource (their fhirUser: a Patient, Practitioner, RelatedPerson
 * or Person) when an app asked for `openid profile`: `name`, `given_name`,
 * `family_name`, `middle_name`, `gender`, `birthdate`, `preferred_username` (the login)
 * and `updated_at`. Claims the resource does not hold are left out; a user whose
 * resource is gone gets only `preferred_username`.
 */
export const PROFILE_CLAIMS = ['name', 'given_name', 'family_name', 'middle_name', 'gender', 'birthdate', 'preferred_username', 'updated_at'];

export async function profileClaims(context: AuthContext, user: UserAccount): Promise<Record<string, unknown>> {
  const claims: Record<string, unknown> = { preferred_username: user.username };
  const [type, id] = user.fhirUser.split('/');
  let version;
  try {
    version = await context.repo.read(type, id);
  } catch (err) {
    if (isOperationOutcomeError(err) && [404, 410].includes(err.status)) return claims;
    throw err;
  }
  const resource = version.resource as { name?: HumanName[] | HumanName; gender?: string; birthDate?: string; meta?: { lastUpdated?: string } };
  // Person and RelatedPerson, like Patient and Practitioner, hold a list; a single HumanName is tolerated.
  const names = Array.isArray(resource.name) ? resource.name : resource.name ? [resource.name] : [];
  const name = names.find((n) => n.use === 'official') ?? names.find((n) => n.use !== 'old') ?? names[0];
  if (name) {
    const [given, ...middle] = name.given ?? [];
    const text = name.text ?? [...(name.prefix ?? []), ...(name.given ?? []), name.family, ...(name.suffix ?? [])].filter(Boolean).join(' ');
    if (text) claims.name = text;
    if (given) claims.given_name = given;
    if (middle.length > 0) claims.middle_name = middle.join(' ');
    if (name.family) claims.family_name = name.family;
  }
  // OIDC's gender values are female and male; other values may be used "when neither … is applicable".
  if (resource.gender && resource.gender !== 'unknown') claims.gender = resource.gender;
  if (resource.birthDate) claims.birthdate = resource.birthDate;
  if (resource.meta?.lastUpdated) claims.updated_at = Math.floor(new Date(resource.meta.lastUpdated).getTime() / 1000);
  return claims;
}
