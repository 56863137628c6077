/** Sets environment variables for an in-process test; the returned function puts back what was there. */
export function setEnv(vars: Record<string, string>): () => void {
  const saved = Object.keys(vars).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, vars);
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}
