import type { GlobalOptions } from "../cli/experiment.ts";
import { UserError } from "../errors.ts";

export async function reportCommand(_options: GlobalOptions & { stdout?: NodeJS.WritableStream }): Promise<number> {
  throw new UserError("NOT_AVAILABLE", "report is not available yet");
}
