/// <reference types="vite/client" />

declare module '*.vue' {
  import type { DefineComponent } from 'vue'
  const component: DefineComponent<object, object, unknown>
  export default component
}

// A screen's GraphQL document, imported as text (`./screen.graphql?raw`).
declare module '*.graphql?raw' {
  const document: string
  export default document
}
