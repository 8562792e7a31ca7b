import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'requests',
    component: () => import('./RequestsPage.vue'),
    meta: { group: 'requests', title: 'requests.title', order: 40 },
  },
  {
    path: 'action-lists',
    component: () => import('./ActionListsPage.vue'),
    meta: { group: 'requests', title: 'requests.actionLists', order: 41 },
  },
] satisfies ScreenRoute[]
