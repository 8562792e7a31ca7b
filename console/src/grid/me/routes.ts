import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'me',
    component: () => import('./MeTab.vue'),
    meta: { title: 'gridMe.title', order: 40, tab: true, icon: 'user-o' },
  },
] satisfies ScreenRoute[]
