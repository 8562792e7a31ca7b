// Sign-in by OpenID Connect authorization code with PKCE (oidc-client-ts), against
// Keycloak or the development issuer alike: the issuer comes from config.json.
// Tokens live in sessionStorage (gone with the tab) and renew silently by refresh token.
import { UserManager, WebStorageStateStore, type User } from 'oidc-client-ts'
import { consoleConfig } from './config'

// Which app signs in: the staff consoles, the residents' app (its own client), or the
// explorer (the console's client: the same people try the API there).
export type App = 'console' | 'h5' | 'graphiql'

let manager: Promise<UserManager> | null = null
let app: App = 'console'

export function useApp(which: App): void {
  app = which
}

function userManager(): Promise<UserManager> {
  manager ??= consoleConfig().then((config) => {
    const base = `${window.location.origin}/${app}`
    return new UserManager({
      authority: config.issuer,
      client_id: app === 'h5' ? config.residentsClientId : config.consoleClientId,
      redirect_uri: `${base}/callback`,
      post_logout_redirect_uri: `${base}/`,
      response_type: 'code',
      scope: 'openid profile',
      userStore: new WebStorageStateStore({ store: window.sessionStorage }),
      automaticSilentRenew: true,
    })
  })
  return manager
}

export async function currentUser(): Promise<User | null> {
  const user = await (await userManager()).getUser()
  return user && !user.expired ? user : null
}

/** The bearer token for the next request, renewed first when it is about to expire. */
export async function accessToken(): Promise<string | null> {
  const users = await userManager()
  let user = await users.getUser()
  if (user && (user.expires_in ?? 0) < 30 && user.refresh_token) {
    user = await users.signinSilent().catch(() => null)
  }
  return user && !user.expired ? user.access_token : null
}

/** Off to the issuer's login page; back at /<app>/callback, then at `returnTo`. */
export async function signIn(returnTo: string): Promise<void> {
  await (await userManager()).signinRedirect({ state: { returnTo } })
}

/** Completes the sign-in on the callback page; returns where the user was going. */
export async function completeSignIn(): Promise<string> {
  const user = await (await userManager()).signinRedirectCallback()
  const state = user.state as { returnTo?: string } | undefined
  return state?.returnTo ?? '/'
}

export async function signOut(): Promise<void> {
  await (await userManager()).signoutRedirect()
}
