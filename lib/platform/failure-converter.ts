// Failures (error messages and stack traces of activities and workflows) are part of the
// history too. With encodeCommonAttributes they travel as an encoded payload, which the
// codec encrypts like any other, so an error message that quoted a value could not leak
// it. Loaded by path (the worker bundles it into the workflow sandbox).
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
