// Who is signed in (`me`) and which village the console is working on: a village admin
// has one; a platform admin or coordinator may switch between those they may read. The
// region's screens show the chosen village's region, so choosing a region is choosing
// its first village.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { currentUser } from './auth'
import { request } from './graphql'
import meDocument from './me.graphql?raw'

export interface RegionRef {
  id: string
  name: string
}

export interface VillageRef {
  id: string
  slug: string
  name: string
  region: RegionRef
}

interface Me {
  subject: string
  username: string | null
  roles: string[]
  villages: VillageRef[]
}

const VILLAGE_KEY = 'villagelink.village'

const HAN = /^[\p{Script=Han}·]+$/u

function text(value: unknown): string {
  return typeof value === 'string' ? value.trim() : ''
}

/** A person's name from their ID token's claims. A Chinese name is the family name then
 * the given name, unspaced (Keycloak's `name` puts the given name first, with a space);
 * any other name is the token's `name`. Null when the token names nobody. */
export function personName(claims: {
  name?: unknown
  given_name?: unknown
  family_name?: unknown
}): string | null {
  const given = text(claims.given_name)
  const family = text(claims.family_name)
  if (HAN.test(given) && HAN.test(family)) return family + given
  return text(claims.name) || null
}

export const useSession = defineStore('session', () => {
  const me = ref<Me | null>(null)
  /** The person's name as their ID token gives it (`personName`), which the header
   * shows; their username where the token names nobody. */
  const name = ref<string | null>(null)
  const villageSlug = ref<string | null>(sessionStorage.getItem(VILLAGE_KEY))

  async function load(): Promise<Me> {
    const [data, user] = await Promise.all([request<{ me: Me }>(meDocument), currentUser()])
    me.value = data.me
    name.value = user ? personName(user.profile) : null
    const slugs = data.me.villages.map((village) => village.slug)
    if (!villageSlug.value || !slugs.includes(villageSlug.value)) {
      villageSlug.value = slugs[0] ?? null
    }
    return data.me
  }

  function chooseVillage(slug: string): void {
    villageSlug.value = slug
    sessionStorage.setItem(VILLAGE_KEY, slug)
  }

  const village = computed(
    () => me.value?.villages.find((candidate) => candidate.slug === villageSlug.value) ?? null,
  )

  /** The regions of the villages the person may read, each once, in their villages' order. */
  const regions = computed(() => {
    const seen = new Map<string, RegionRef>()
    for (const candidate of me.value?.villages ?? []) {
      if (!seen.has(candidate.region.id)) seen.set(candidate.region.id, candidate.region)
    }
    return [...seen.values()]
  })

  function chooseRegion(id: string): void {
    if (village.value?.region.id === id) return
    const first = me.value?.villages.find((candidate) => candidate.region.id === id)
    if (first) chooseVillage(first.slug)
  }
  const roles = computed(() => new Set(me.value?.roles ?? []))
  const displayName = computed(() => name.value ?? me.value?.username ?? me.value?.subject ?? '')

  /** The console a person lands on: the grid worker's phone, the coordinator's region
   * overview, or the village admin's 工作台. */
  const home = computed(() => {
    if (roles.value.has('grid-worker')) return '/grid'
    if (roles.value.has('regional-coordinator')) return '/region'
    return '/admin'
  })

  /** A resident and nothing else: the staff consoles have no screen for them. */
  const residentOnly = computed(
    () => roles.value.size > 0 && [...roles.value].every((role) => role === 'resident'),
  )

  return {
    me,
    name,
    displayName,
    village,
    villageSlug,
    regions,
    roles,
    home,
    residentOnly,
    load,
    chooseVillage,
    chooseRegion,
  }
})
