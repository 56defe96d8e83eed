// `cdk synth` / `cdk deploy` entry point (cdk.json: "app": "node infra/app.ts").
import { buildApp } from './stack.ts';

buildApp().app.synth();
