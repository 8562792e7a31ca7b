import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'residents',
    component: () => import('./ResidentsTab.vue'),
    meta: { title: 'gridResidents.title', order: 30, tab: true, icon: 'friends-o' },
  },
] satisfies ScreenRoute[]
