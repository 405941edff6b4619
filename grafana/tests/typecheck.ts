// Type-checks grafana/dashboards/stampede.json against the dashboard model of @grafana/schema:
//   npx tsc --noEmit -p grafana/tests
//
// TypeScript types an imported JSON file with widened literals ("timeseries" becomes string,
// 1 becomes number), so the JSON can never satisfy string-literal unions or enums such as
// FieldColorModeId or VariableType. `AsJson<Dashboard>` is the same structure with those
// literal unions/enums widened back to string/number: every property name, nesting level,
// array and primitive kind is still checked (e.g. `"gridPos": "x"` or `"targets": {}` fail).
import type { Dashboard } from '@grafana/schema';
import dashboard from '../dashboards/stampede.json' with { type: 'json' };

type AsJson<T> = T extends string
  ? string
  : T extends number
    ? number
    : T extends boolean
      ? boolean
      : T extends null | undefined
        ? T
        : T extends ReadonlyArray<infer U>
          ? Array<AsJson<U>>
          : T extends object
            ? { [K in keyof T]: AsJson<T[K]> }
            : T;

const checked: AsJson<Dashboard> = dashboard;
export default checked;
