/**
 * Entry point of the policy pack: `pulumi preview --policy-pack policy` runs this file, and
 * `new PolicyPack` starts the analyzer server the engine talks to. The rules themselves live in
 * ./policies.ts, which starts nothing, so unit tests import them directly.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("dgx-storage-policy", { policies: [...policies] });
