import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'requests',
    component: () => import('./RequestsTab.vue'),
    meta: { title: 'gridRequests.title', order: 20, tab: true, icon: 'todo-list-o' },
  },
] satisfies ScreenRoute[]
