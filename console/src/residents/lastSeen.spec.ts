import { beforeEach, describe, expect, it } from 'vitest'
import { ApiError } from '@/shared/graphql'
import { remembered } from './lastSeen'

describe('remembered', () => {
  beforeEach(() => localStorage.clear())

  it('keeps the fresh answer and shows it again when the network fails', async () => {
    expect(await remembered('home', async () => ({ n: 1 }))).toEqual({ data: { n: 1 }, stale: false })
    const offline = await remembered('home', () => Promise.reject(new TypeError('Failed to fetch')))
    expect(offline).toEqual({ data: { n: 1 }, stale: true })
  })

  it('still fails when nothing was seen before, or when the API refused', async () => {
    await expect(remembered('none', () => Promise.reject(new TypeError('x')))).rejects.toThrow('x')
    await remembered('home', async () => 1)
    const refused = remembered('home', () => Promise.reject(new ApiError('不允许', 'FORBIDDEN')))
    await expect(refused).rejects.toThrow('不允许')
  })
})
