// From the drawer's form to the API's inputs, and from the list's filter row to a
// ResidentFilter: blanks are left out (the API reads a missing field as "no change" or
// "no filter"), never sent as empty strings.

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

function present(value: string): string | undefined {
  const trimmed = value.trim()
  return trimmed ? trimmed : undefined
}

export function emptyForm(): ResidentForm {
  return { name: '', idNumber: '', phone: '', household: '', relationToHead: '' }
}

export function createInput(village: string, form: ResidentForm): Record<string, unknown> {
  return withoutBlanks({
    village,
    name: form.name.trim(),
    idNumber: form.idNumber.trim(),
    phone: present(form.phone),
    household: present(form.household),
    relationToHead: present(form.relationToHead),
  })
}

/** Only what changed: a masked phone the admin did not touch is not sent back. */
export function updateInput(
  id: string,
  form: ResidentForm,
  before: ResidentForm,
): Record<string, unknown> {
  return withoutBlanks({
    id,
    name: form.name.trim() !== before.name ? form.name.trim() : undefined,
    phone: form.phone.trim() !== before.phone ? form.phone.trim() : undefined,
    relationToHead:
      form.relationToHead !== before.relationToHead ? present(form.relationToHead) : undefined,
  })
}

export function residentFilter(filters: ResidentFilters): Record<string, unknown> {
  return withoutBlanks({
    name: present(filters.name),
    grid: present(filters.grid),
    tag: present(filters.tag),
    ageMin: filters.ageMin ?? undefined,
    ageMax: filters.ageMax ?? undefined,
  })
}

function withoutBlanks(input: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined))
}

/** The values of an enum, in the API's order, from the labels `enumLabels` gave. */
export function valuesOf(labels: Record<string, string>, enumName: string): string[] {
  const prefix = `${enumName}.`
  return Object.keys(labels)
    .filter((key) => key.startsWith(prefix))
    .map((key) => key.slice(prefix.length))
}
