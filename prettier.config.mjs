// Prettier: the one code format (`npm run format` writes it, `npm run lint` checks it).
// Options chosen to match the code as it was written by hand, so the first format run
// mostly wraps over-long lines. .editorconfig says the same for editors.
/** @type {import('prettier').Config} */
export default {
  printWidth: 130, // the code's lines were long by habit (many 130–150); 130 keeps most of them intact
  singleQuote: true, // the code's string style
  semi: true,
  trailingComma: 'all', // multi-line literals and argument lists already end with a comma
  arrowParens: 'always',
  endOfLine: 'lf',
  // YAML (compose, Kubernetes manifests) is written with double quotes, as its tools print it.
  overrides: [{ files: ['*.yml', '*.yaml'], options: { singleQuote: false } }],
};
