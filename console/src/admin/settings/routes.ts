import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'settings/village',
    component: () => import('./VillagePage.vue'),
    meta: { group: 'settings', title: 'settings.villageInfo.title', order: 130 },
  },
  {
    path: 'settings/categories',
    component: () => import('./CategoriesPage.vue'),
    meta: { group: 'settings', title: 'settings.categories.title', order: 132 },
  },
  {
    path: 'settings/approvals',
    component: () => import('./ApprovalsPage.vue'),
    meta: { group: 'settings', title: 'settings.approvals', order: 134 },
  },
  {
    path: 'settings/api-clients',
    component: () => import('./ApiClientsPage.vue'),
    meta: { group: 'settings', title: 'settings.apiClients', order: 133 },
  },
  {
    path: 'settings/buildings',
    component: () => import('./BuildingsPage.vue'),
    meta: { group: 'settings', title: 'settings.buildings', order: 131 },
  },
] satisfies ScreenRoute[]
