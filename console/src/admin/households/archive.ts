// 归档: asked first, then the API's refusal (e.g. residents still live there) shown as is.
import { ElMessage, ElMessageBox } from 'element-plus'
import { i18n } from '@/shared/i18n'
import { mutateForm } from '@/shared/mutate'
import archiveDocument from './archiveHousehold.graphql?raw'

export async function archiveHousehold(household: { id: string; address: string }): Promise<boolean> {
  const { t } = i18n.global
  try {
    await ElMessageBox.confirm(t('households.archiveConfirm', { address: household.address }), {
      confirmButtonText: t('households.archive'),
      cancelButtonText: t('common.cancel'),
      type: 'warning',
    })
  } catch {
    return false
  }
  const outcome = await mutateForm(archiveDocument, { id: household.id })
  if (!outcome.record) {
    ElMessage.error(Object.values(outcome.errors)[0])
    return false
  }
  ElMessage.success(t('households.archivedDone'))
  return true
}
