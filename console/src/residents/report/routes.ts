import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'report',
    component: () => import('./ReportPage.vue'),
    meta: { title: 'h5.report', order: 20, tab: true, icon: 'edit' },
  },
  {
    path: 'requests/:id',
    component: () => import('./RequestPage.vue'),
    meta: { title: 'h5Report.detail', order: 21 },
  },
] satisfies ScreenRoute[]
