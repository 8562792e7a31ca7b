import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'notices',
    component: () => import('./NoticesPage.vue'),
    meta: { group: 'notices', title: 'notices.title', order: 90 },
  },
] satisfies ScreenRoute[]
