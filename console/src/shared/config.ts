// What the gateway tells a browser about where things are (GET /console/config.json):
// the console is built once and runs against whichever issuer and live URL the
// deployment has.
export interface ConsoleConfig {
  issuer: string
  consoleClientId: string
  residentsClientId: string
  graphqlUrl: string
  liveUrl: string
}

let loaded: Promise<ConsoleConfig> | null = null

export function consoleConfig(): Promise<ConsoleConfig> {
  loaded ??= fetch('/console/config.json', { cache: 'no-store' }).then((response) => {
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`)
    return response.json() as Promise<ConsoleConfig>
  })
  return loaded
}
