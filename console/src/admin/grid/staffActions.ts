// A staff member's login and leaving: 开通账号 / 重置密码 (the temporary password shown
// once), 离岗 with a reason (audited), 复岗.
import { ElMessage, ElMessageBox } from 'element-plus'
import { i18n } from '@/shared/i18n'
import { mutateForm } from '@/shared/mutate'
import { askText, isReason } from '@/shared/sensitive'
import disableDocument from './disableGridStaff.graphql?raw'
import enableDocument from './enableGridStaff.graphql?raw'
import inviteDocument from './inviteGridStaff.graphql?raw'

const { t } = i18n.global

function refused(errors: Record<string, string>): void {
  ElMessage.error(Object.values(errors)[0])
}

export async function inviteStaff(staff: { id: string; accountUsername: string | null }): Promise<boolean> {
  let email = ''
  if (!staff.accountUsername) {
    const given = await askText(t('grid.emailHint'), t('grid.email'), (value) => value.includes('@'))
    if (given === null) return false
    email = given
  }
  const outcome = await mutateForm<{ username: string; temporaryPassword: string }>(inviteDocument, {
    id: staff.id,
    ...(email ? { email } : {}),
  })
  if (!outcome.record) {
    refused(outcome.errors)
    return false
  }
  await ElMessageBox.alert(
    t('grid.loginBody', { username: outcome.record.username, password: outcome.record.temporaryPassword }),
    t('grid.loginTitle'),
    { confirmButtonText: t('common.confirm') },
  )
  return true
}

export async function disableStaff(staff: { id: string }): Promise<boolean> {
  const reason = await askText(t('grid.disableReason'), t('grid.disable'), isReason)
  if (reason === null) return false
  const outcome = await mutateForm(disableDocument, { id: staff.id, reason })
  if (!outcome.record) {
    refused(outcome.errors)
    return false
  }
  ElMessage.success(t('grid.disabledDone'))
  return true
}

export async function enableStaff(staff: { id: string }): Promise<boolean> {
  const outcome = await mutateForm(enableDocument, { id: staff.id })
  if (!outcome.record) {
    refused(outcome.errors)
    return false
  }
  ElMessage.success(t('grid.enabledDone'))
  return true
}
