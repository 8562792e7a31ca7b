import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { currentUser, signIn } from '@/shared/auth'
import { screens, type ScreenRoute } from '@/console/screens'
import { useResident } from './account/resident'

export const residentScreens = screens(
  import.meta.glob<ScreenRoute[]>('./*/routes.ts', { eager: true, import: 'default' }),
)

const routes: RouteRecordRaw[] = [
  { path: '/callback', component: () => import('./CallbackPage.vue'), meta: { public: true } },
  { path: '/verify', component: () => import('./account/VerifyPage.vue'), meta: { unbound: true } },
  {
    path: '/',
    component: () => import('./ResidentLayout.vue'),
    props: { screens: residentScreens },
    children: [{ path: '', redirect: '/home' }, ...residentScreens],
  },
]

export const router = createRouter({ history: createWebHistory('/h5/'), routes })

// Every screen needs a signed-in resident; until the village binds the account (实名认证)
// the only screen is the request for it.
router.beforeEach(async (to) => {
  if (to.meta.public) return true
  if (!(await currentUser())) {
    await signIn(to.fullPath)
    return false
  }
  const resident = useResident()
  if (!resident.loaded) await resident.load()
  if (!resident.self && !to.meta.unbound) return '/verify'
  if (resident.self && to.meta.unbound) return '/home'
  return true
})
