// The health record drawer's form to the API's input. Lists are sent whole (the API
// replaces them); an empty heart-rate range or safe zone is sent as null, which clears it
// on an edit and leaves it unset on a new record; a blank note likewise.

export interface ContactForm {
  name: string
  relation: string
  phone: string
}

export interface HealthForm {
  careLevel: string
  conditions: string[]
  contacts: ContactForm[]
  wanderingRisk: boolean
  heartRateMin: number | null | undefined
  heartRateMax: number | null | undefined
  latitude: number | null | undefined
  longitude: number | null | undefined
  radiusM: number | null | undefined
  note: string
}

export function emptyHealthForm(): HealthForm {
  return {
    careLevel: 'SELF_CARE',
    conditions: [],
    contacts: [{ name: '', relation: '', phone: '' }],
    wanderingRisk: false,
    heartRateMin: null,
    heartRateMax: null,
    latitude: null,
    longitude: null,
    radiusM: null,
    note: '',
  }
}

const given = (value: number | null | undefined): value is number => value !== null && value !== undefined

export function healthRecordInput(resident: string, form: HealthForm): Record<string, unknown> {
  return {
    resident,
    careLevel: form.careLevel,
    conditions: form.conditions.map((condition) => condition.trim()).filter(Boolean),
    emergencyContacts: form.contacts
      .map((contact) => ({
        name: contact.name.trim(),
        relation: contact.relation.trim(),
        phone: contact.phone.trim(),
      }))
      .filter((contact) => contact.name || contact.relation || contact.phone),
    wanderingRisk: form.wanderingRisk,
    heartRateRange:
      given(form.heartRateMin) && given(form.heartRateMax) ? { min: form.heartRateMin, max: form.heartRateMax } : null,
    safeZone:
      given(form.latitude) && given(form.longitude) && given(form.radiusM)
        ? { latitude: form.latitude, longitude: form.longitude, radiusM: form.radiusM }
        : null,
    note: form.note.trim() || null,
  }
}
