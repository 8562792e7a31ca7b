import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'mine',
    component: () => import('./MinePage.vue'),
    meta: { title: 'h5.mine', order: 50, tab: true, icon: 'user-o' },
  },
] satisfies ScreenRoute[]
