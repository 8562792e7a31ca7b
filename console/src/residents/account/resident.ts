// Who the signed-in resident is: their own record once the village has bound the
// account (实名认证), and where their request for it stands until then.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { request } from '@/shared/graphql'
import { remembered } from '../lastSeen'
import meDocument from './me.graphql?raw'

export interface ResidentSelf {
  id: string
  village: string
  villageName: string
  name: string
}

interface Me {
  subject: string
  username: string | null
  residentVillages: { slug: string; name: string }[]
  residentAccountState: string | null
  resident: ResidentSelf | null
}

export const useResident = defineStore('resident', () => {
  const me = ref<Me | null>(null)
  const self = ref<ResidentSelf | null>(null)
  const loaded = ref(false)

  // The last-seen copy without a network: the app shell starts offline, as a reload
  // with a report waiting to be sent must (every screen guard asks who this is).
  async function load(): Promise<Me> {
    const { data } = await remembered('me', () => request<{ me: Me }>(meDocument))
    me.value = data.me
    self.value = data.me.resident
    loaded.value = true
    return data.me
  }

  return { me, self, loaded, load }
})
