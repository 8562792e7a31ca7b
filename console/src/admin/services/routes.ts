import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'service-orders',
    component: () => import('./ServiceOrdersPage.vue'),
    meta: { group: 'services', title: 'services.orders', order: 80 },
  },
  {
    path: 'service-items',
    component: () => import('./ServiceItemsPage.vue'),
    meta: { group: 'services', title: 'services.items', order: 81 },
  },
] satisfies ScreenRoute[]
