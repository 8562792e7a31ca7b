// From the drawer's form to the API's inputs, and from the list's filter row to a
// ResidentFilter: blanks are left out (the API reads a missing field as "no change" or
// "no filter"), never sent as empty strings (shared/formInput.ts).
import { filled } from '@/shared/formInput'

export interface ResidentForm {
  name: string
  idNumber: string
  phone: string
  household: string
  relationToHead: string
}

export interface ResidentFilters {
  name: string
  grid: string
  tag: string
  ageMin: number | null | undefined
  ageMax: number | null | undefined
}

export function emptyForm(): ResidentForm {
  return { name: '', idNumber: '', phone: '', household: '', relationToHead: '' }
}

export function createInput(village: string, form: ResidentForm): Record<string, unknown> {
  return {
    village,
    name: form.name.trim(),
    idNumber: form.idNumber.trim(),
    ...filled({ phone: form.phone, household: form.household, relationToHead: form.relationToHead }),
  }
}

/** Only what changed: a masked phone the admin did not touch is not sent back. */
export function updateInput(
  id: string,
  form: ResidentForm,
  before: ResidentForm,
): Record<string, unknown> {
  const input: Record<string, unknown> = { id }
  for (const field of ['name', 'phone'] as const) {
    const value = form[field].trim()
    if (value !== before[field]) input[field] = value
  }
  if (form.relationToHead !== before.relationToHead) {
    Object.assign(input, filled({ relationToHead: form.relationToHead }))
  }
  return input
}

export function residentFilter(filters: ResidentFilters): Record<string, unknown> {
  return filled({ ...filters })
}

/** The values of an enum, in the API's order, from the labels `enumLabels` gave. */
export function valuesOf(labels: Record<string, string>, enumName: string): string[] {
  const prefix = `${enumName}.`
  return Object.keys(labels)
    .filter((key) => key.startsWith(prefix))
    .map((key) => key.slice(prefix.length))
}
