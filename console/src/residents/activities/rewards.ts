// Whether the app offers a reward's 兑换 button: some left and enough points. The API
// decides again (and refuses in Chinese); this only spares a resident a refusal.
export interface Reward {
  id: string
  name: string
  description: string | null
  pointsCost: number
  stock: number
}

export function mayRedeem(reward: Reward, balance: number): boolean {
  return reward.stock > 0 && reward.pointsCost <= balance
}
