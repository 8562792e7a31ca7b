import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'home',
    component: () => import('./HomePage.vue'),
    meta: { title: 'h5.home', order: 10, tab: true, icon: 'home-o' },
  },
  {
    path: 'notices',
    component: () => import('./NoticesPage.vue'),
    meta: { title: 'h5Home.notices', order: 11 },
  },
] satisfies ScreenRoute[]
