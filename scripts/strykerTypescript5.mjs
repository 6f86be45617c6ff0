/**
 * `node --import` this file (scripts/mutation.mjs does, for `--typecheck`) to give StrykerJS the
 * TypeScript 5 compiler API where it imports `typescript`. The project compiles with TypeScript 7,
 * which no longer ships that API; Stryker's TypeScript checker and its tsconfig rewriting need it.
 * Only imports made by @stryker-mutator packages are redirected, to the `typescript-5` package
 * (an npm alias of typescript@5.9): tsc, Vitest and everything else keep TypeScript 7.
 */
import { register } from 'node:module';

const hooks = `
export async function resolve(specifier, context, next) {
  if (specifier === 'typescript' && context.parentURL?.includes('/@stryker-mutator/')) {
    return next('typescript-5', context);
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
