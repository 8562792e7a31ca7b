// 派单→接单→完成: how far an order went, as van-steps' active index (下单 0 … 完成 3).
const STEP: Record<string, number> = { ORDERED: 0, DISPATCHED: 1, DECLINED: 1, ACCEPTED: 2, COMPLETED: 3, RATED: 3 }

export function orderStep(state: string): number {
  return STEP[state] ?? 0
}
