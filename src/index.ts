import { createWorker } from "./app/worker.ts";

export { DestinationGate } from "./control/gate.ts";
export default createWorker();
