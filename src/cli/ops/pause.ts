import { pauseOrResume } from './pause-resume';

export const run = (argv: string[]): Promise<void> => pauseOrResume('pause', argv);
