/** ConfigIssue: one problem in a config, named by its key path, and its one-line rendering. */

export interface ConfigIssue {
  /** Key path as a user writes it: `rollout.steps[1]`, `admin.token`; `(file)` for the file as a whole. */
  readonly path: string
  readonly message: string
}

export function renderIssue(issue: ConfigIssue): string {
  return `${issue.path}: ${issue.message}`
}
