// The explorer at /graphiql (GraphiQL, its docs and history as it ships them). Calls
// carry the signed-in person's token (the console's sign-in) unless the headers tab
// has an Authorization of its own: an integrator pastes their client's token there.
import { ToolbarButton } from '@graphiql/react'
import { createGraphiQLFetcher, type Fetcher } from '@graphiql/toolkit'
import { GraphiQL } from 'graphiql'
import 'graphiql/graphiql.css'
import './page.css'
import { createElement } from 'react'
import { createRoot } from 'react-dom/client'
import { accessToken, completeSignIn, currentUser, signIn, signOut, useApp } from '@/shared/auth'

useApp('graphiql')

const base = createGraphiQLFetcher({ url: '/graphql' })

const fetcher: Fetcher = async (params, options) => {
  const pasted = Object.keys(options?.headers ?? {}).some(
    (name) => name.toLowerCase() === 'authorization',
  )
  const token = pasted ? null : await accessToken()
  const headers = { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...options?.headers }
  return base(params, { ...options, headers })
}

async function start(): Promise<void> {
  if (window.location.pathname.startsWith('/graphiql/callback')) {
    await completeSignIn()
    window.history.replaceState(null, '', '/graphiql/')
  }
  const signedIn = (await currentUser()) !== null
  const account = createElement(
    ToolbarButton,
    {
      label: signedIn ? '退出登录 (Sign out)' : '登录 (Sign in)',
      onClick: () => void (signedIn ? signOut() : signIn('/graphiql/')),
    },
    signedIn ? '退出' : '登录',
  )
  createRoot(document.getElementById('graphiql')!).render(
    createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      toolbar: { additionalContent: account },
      defaultQuery: '# 欢迎使用 villagelink GraphQL 接口。登录后即以本人身份查询；\n# 接入应用可在 Headers 中粘贴 {"Authorization": "Bearer <token>"}。\nquery {\n  me {\n    username\n    roles\n    villages { slug name }\n  }\n}\n',
    }),
  )
}

void start()
