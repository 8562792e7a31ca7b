import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'activities',
    component: () => import('./ActivitiesPage.vue'),
    meta: { group: 'civility', title: 'civility.activities', order: 70 },
  },
  {
    path: 'volunteer-teams',
    component: () => import('./VolunteerTeamsPage.vue'),
    meta: { group: 'civility', title: 'teams.title', order: 71 },
  },
  {
    path: 'points',
    component: () => import('./PointsPage.vue'),
    meta: { group: 'civility', title: 'points.title', order: 72 },
  },
  {
    path: 'rewards',
    component: () => import('./RewardsPage.vue'),
    meta: { group: 'civility', title: 'rewards.title', order: 73 },
  },
] satisfies ScreenRoute[]
