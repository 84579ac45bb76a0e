/**
 * What every resource sub-app of the admin API shares: the validator's refusal (the operations' own), the error
 * responses each route documents, response validation, and the operation context and actor of a request.
 */
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { RouterDeps } from "../core/deps.ts";
import { contextOf, operatorOf, originOf, type Actor, type OperationContext } from "../operations/context.ts";
import { invalidInput } from "../operations/inputs.ts";
import { ErrorSchema } from "./schemas.ts";

export type AdminEnv = { Bindings: Env };

/** A sub-app whose request validation fails as every operator input does: 400 `invalid_request`, each field named. */
export function resourceApp(): OpenAPIHono<AdminEnv> {
  return new OpenAPIHono<AdminEnv>({
    defaultHook: (result) => {
      if (!result.success) throw invalidInput(result.error);
    },
  });
}

export const security = [{ AdminToken: [] }];

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const errors = {
  400: json(ErrorSchema, "Invalid request"),
  401: json(ErrorSchema, "Missing or wrong bearer token"),
  503: json(ErrorSchema, "Admin API disabled (ADMIN_TOKEN unset)"),
};

/** Responses are validated against the schemas the OpenAPI document is generated from. */
export function valid<T extends z.ZodType>(schema: T, data: z.input<T>): z.output<T> {
  return schema.parse(data);
}

export const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

/** The operations' view of a request: its bindings with the router's deps. */
export const contextFor = (c: Context<AdminEnv>, deps: RouterDeps): OperationContext => contextOf(c.env, deps);

/** The actor of a request that passed the bearer token check. */
export function actorFor(c: Context<AdminEnv>): Promise<Actor> {
  return operatorOf(c.env, originOf("api", c.get("requestId"), c.req.header("cf-connecting-ip")));
}
