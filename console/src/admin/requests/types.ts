// The shapes requests.graphql answers with, shared by the page and its drawers.
export interface Named {
  id: string
  name: string
}

export interface Category extends Named {
  active: boolean
  children: Category[]
}

export interface RequestRow {
  id: string
  state: string
  grade: string
  channel: string
  description: string
  overdue: boolean
  dueAt: string
  createdAt: string
  category: Named
  grid: Named | null
  assignee: Named | null
  reporter: { name: string }
  location: { building: string | null; text: string | null }
}

export interface Choices {
  categories: Category[]
  grids: Named[]
  staff: Named[]
}
