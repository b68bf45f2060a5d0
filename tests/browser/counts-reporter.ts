// One line with the run's counts, after the list reporter's detail, for CI logs to grep.
import type { Reporter, TestCase, TestResult, FullResult } from '@playwright/test/reporter';

export default class CountsReporter implements Reporter {
  private outcomes = new Map<string, string>();

  onTestEnd(test: TestCase, _result: TestResult) {
    // The last result decides; with retries 0 there is one result per test.
    this.outcomes.set(test.id, test.outcome());
  }

  onEnd(result: FullResult) {
    const count = (outcome: string) =>
      [...this.outcomes.values()].filter((o) => o === outcome).length;
    console.log(
      `browser tests: ${result.status}; ${count('expected')} passed, ` +
        `${count('unexpected')} failed, ${count('flaky')} flaky, ${count('skipped')} skipped`,
    );
  }

  printsToStdio() {
    return true;
  }
}
