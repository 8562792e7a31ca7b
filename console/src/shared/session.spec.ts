import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import { personName, useSession } from './session'

function signedIn(roles: string[]) {
  const session = useSession()
  session.me = { subject: 's', username: 'u', roles, villages: [] }
  return session
}

describe('session', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('sends a resident and nothing else away from the staff consoles', () => {
    expect(signedIn(['resident']).residentOnly).toBe(true)
  })

  it('keeps staff, also staff who are residents too, and nobody yet signed in', () => {
    expect(signedIn(['resident', 'grid-worker']).residentOnly).toBe(false)
    expect(signedIn(['village-admin']).residentOnly).toBe(false)
    expect(signedIn([]).residentOnly).toBe(false)
  })

  it('names the person as they signed in, else by their username', () => {
    const session = signedIn(['village-admin'])
    expect(session.displayName).toBe('u')
    session.name = '杏花村管理员'
    expect(session.displayName).toBe('杏花村管理员')
  })

  it('writes a Chinese name family name first, unspaced, and any other as the token has it', () => {
    expect(personName({ name: '建 林', given_name: '建', family_name: '林' })).toBe('林建')
    expect(personName({ name: 'Anna Lee', given_name: 'Anna', family_name: 'Lee' })).toBe('Anna Lee')
    expect(personName({ name: '杏花村管理员' })).toBe('杏花村管理员')
    expect(personName({ name: '  ' })).toBeNull()
    expect(personName({})).toBeNull()
  })

  it('lists the regions of the villages once each, and chooses a region by its first village', () => {
    const session = signedIn(['regional-coordinator'])
    const nanhe = { id: 'nanhe', name: '南河联动片区' }
    const beishan = { id: 'beishan', name: '北山片区' }
    session.me!.villages = [
      { id: '1', slug: 'liulin', name: '柳林村', region: nanhe },
      { id: '2', slug: 'shanxia', name: '山下村', region: beishan },
      { id: '3', slug: 'hedong', name: '河东村', region: nanhe },
      { id: '4', slug: 'shangling', name: '上岭村', region: beishan },
    ]
    session.chooseVillage('hedong')
    expect(session.regions).toEqual([nanhe, beishan])
    session.chooseRegion('nanhe') // already there: the village stays
    expect(session.villageSlug).toBe('hedong')
    session.chooseRegion('beishan')
    expect(session.villageSlug).toBe('shanxia')
    expect(session.village?.region).toEqual(beishan)
    session.chooseRegion('elsewhere') // none of theirs: nothing changes
    expect(session.villageSlug).toBe('shanxia')
  })

  it('lands each person on their own console', () => {
    expect(signedIn(['grid-worker']).home).toBe('/grid')
    expect(signedIn(['regional-coordinator']).home).toBe('/region')
    expect(signedIn(['village-admin']).home).toBe('/admin')
  })
})
