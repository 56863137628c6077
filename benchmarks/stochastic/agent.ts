/**
 * The starting agent of the stochastic benchmark. `SKILLS` lists the task families it handles well;
 * `VARIANT` names this version of the agent (its noise differs from other versions').
 */
const SKILLS: string[] = [];
const VARIANT = "v0";

export default {
  run: async () => ({ skills: SKILLS, variant: VARIANT }),
};
