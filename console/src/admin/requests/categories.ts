// The request categories as one list to choose from: each top-level category followed
// by its sub-categories ("市容环境 / 垃圾清运"); for a new request only active ones.
import type { Category } from './types'

export interface Choice {
  value: string
  label: string
}

export function categoryChoices(categories: Category[], activeOnly = false): Choice[] {
  const kept = (category: Category) => !activeOnly || category.active
  return categories.filter(kept).flatMap((category) => [
    { value: category.id, label: category.name },
    ...category.children.filter(kept).map((child) => ({ value: child.id, label: `${category.name} / ${child.name}` })),
  ])
}
