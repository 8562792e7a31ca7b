import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { currentUser, signIn } from '@/shared/auth'
import { useSession } from '@/shared/session'
import { screens, type ScreenRoute } from './screens'

export const adminScreens = screens(
  import.meta.glob<ScreenRoute[]>('../admin/*/routes.ts', { eager: true, import: 'default' }),
)
export const regionScreens = screens(
  import.meta.glob<ScreenRoute[]>('../region/*/routes.ts', { eager: true, import: 'default' }),
)
export const gridScreens = screens(
  import.meta.glob<ScreenRoute[]>('../grid/*/routes.ts', { eager: true, import: 'default' }),
)

function firstPath(routes: ScreenRoute[]): string {
  return routes.length ? String(routes[0].path) : ''
}

const routes: RouteRecordRaw[] = [
  { path: '/callback', component: () => import('./CallbackPage.vue'), meta: { public: true } },
  {
    path: '/',
    component: () => import('./HomeRedirect.vue'),
  },
  {
    path: '/admin',
    component: () => import('./layouts/DesktopLayout.vue'),
    props: { screens: adminScreens, base: '/admin', villageSwitch: true },
    children: [{ path: '', redirect: `/admin/${firstPath(adminScreens)}` }, ...adminScreens],
  },
  {
    path: '/region',
    component: () => import('./layouts/DesktopLayout.vue'),
    props: { screens: regionScreens, base: '/region', villageSwitch: false },
    children: [{ path: '', redirect: `/region/${firstPath(regionScreens)}` }, ...regionScreens],
  },
  {
    path: '/grid',
    component: () => import('./layouts/PhoneLayout.vue'),
    props: { screens: gridScreens, base: '/grid' },
    children: [{ path: '', redirect: `/grid/${firstPath(gridScreens)}` }, ...gridScreens],
  },
  { path: '/:rest(.*)*', component: () => import('./NotFoundPage.vue') },
]

export const router = createRouter({ history: createWebHistory('/console/'), routes })

// Every screen needs a signed-in person; the session (`me`) is loaded once.
router.beforeEach(async (to) => {
  if (to.meta.public) return true
  if (!(await currentUser())) {
    await signIn(to.fullPath)
    return false
  }
  const session = useSession()
  if (!session.me) await session.load()
  if (session.residentOnly) {
    // A resident who signed in here (Keycloak's one sign-in serves both clients) has
    // nothing to do in the staff consoles: their own app is the residents' app.
    window.location.replace('/h5/')
    return false
  }
  return true
})
