/**
 * A worker thread's entry script: the built .js next to the caller, or from the sources (tsx) the
 * .ts, with tsx registered in the thread first (Node 20 does not hand `--import tsx` to workers).
 */
export function workerEntry(name: string, callerUrl: string): { script: string | URL; evalCode: boolean } {
  const fromSource = callerUrl.endsWith('.ts');
  const entry = new URL(fromSource ? `./${name}.ts` : `./${name}.js`, callerUrl);
  if (!fromSource) return { script: entry, evalCode: false };
  const tsx = import.meta.resolve('tsx/esm/api');
  return { script: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`, evalCode: true };
}
