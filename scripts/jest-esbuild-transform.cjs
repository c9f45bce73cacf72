// Jest transform: TypeScript → CommonJS with esbuild (already installed for tsx),
// because the registry mirror here lacks @swc/core's platform packages.
const { transformSync } = require('esbuild');

module.exports = {
  process(source, filename) {
    const result = transformSync(source, {
      loader: 'ts',
      format: 'cjs',
      target: 'node20',
      sourcemap: 'inline',
      sourcefile: filename,
    });
    return { code: result.code };
  },
};
