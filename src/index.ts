import { createWorker } from "./app/worker.ts";

export default createWorker();
