/**
 * The environment of one process: the inherited environment, overridden by the env files,
 * overridden by what dev sets itself (PORT, PS, DYNO). PYTHONUNBUFFERED=1 is added unless either
 * source sets it, so Python output is not held back by pipe buffering.
 */
export function processEnv(
  inherited: NodeJS.ProcessEnv,
  fileVars: ReadonlyMap<string, string>,
  own: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(inherited)) if (value !== undefined) env[key] = value
  for (const [key, value] of fileVars) env[key] = value
  env.PYTHONUNBUFFERED ??= '1'
  return Object.assign(env, own)
}
