// What schema.prisma says the database should hold, derived from Prisma's own parser (the
// DMMF), and what a live database holds, from its catalogue, in one comparable form.
import fs from 'node:fs';
import path from 'node:path';
import { get_dmmf } from '@prisma/prisma-schema-wasm';
import { Client as PgClient } from 'pg';

export interface Column {
  type: string;
  nullable: boolean;
  default: 'autoincrement' | 'now' | null;
}
export interface Schema {
  /** "table.column" → column */
  columns: Record<string, Column>;
  /** index name → "table(col, col) unique|primary|index" */
  indexes: Record<string, string>;
}

interface DmmfField {
  name: string;
  dbName?: string;
  kind: string;
  isList: boolean;
  isRequired: boolean;
  type: string;
  nativeType: [string, string[]] | null;
  default?: { name: string };
}
interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
}
interface DmmfIndex {
  model: string;
  type: 'id' | 'unique' | 'normal';
  dbName?: string;
  fields: { name: string }[];
}

/** Prisma's PostgreSQL type for a scalar field, as information_schema spells it. */
function pgType(f: DmmfField): string {
  const [native, args = []] = f.nativeType ?? [null, []];
  const base = ((): string => {
    switch (f.type) {
      case 'String':
        return native === 'VarChar' ? `character varying(${args[0]})` : 'text';
      case 'Int':
        return 'integer';
      case 'BigInt':
        return 'bigint';
      case 'Boolean':
        return 'boolean';
      case 'Bytes':
        return 'bytea';
      case 'Json':
        return 'jsonb';
      case 'DateTime':
        return native === 'Timestamptz'
          ? `timestamp with time zone(${args[0] ?? 3})`
          : `timestamp without time zone(${args[0] ?? 3})`;
      default:
        throw new Error(`schema.ts does not know how Prisma maps ${f.type}${native ? ` @db.${native}` : ''}: extend pgType()`);
    }
  })();
  return f.isList ? `${base}[]` : base;
}

export function schemaFromPrisma(file = path.join(__dirname, '..', '..', 'prisma', 'schema.prisma')): Schema {
  const dmmf = JSON.parse(get_dmmf(JSON.stringify({ prismaSchema: fs.readFileSync(file, 'utf8') })));
  const models: DmmfModel[] = dmmf.datamodel.models;
  const schema: Schema = { columns: {}, indexes: {} };
  const table = (m: DmmfModel) => m.dbName ?? m.name;
  for (const m of models) {
    for (const f of m.fields.filter((x) => x.kind === 'scalar')) {
      schema.columns[`${table(m)}.${f.dbName ?? f.name}`] = {
        type: pgType(f),
        // Prisma creates scalar lists without NOT NULL.
        nullable: f.isList || !f.isRequired,
        default: f.default?.name === 'autoincrement' ? 'autoincrement' : f.default?.name === 'now' ? 'now' : null,
      };
    }
  }
  for (const idx of dmmf.datamodel.indexes as DmmfIndex[]) {
    const m = models.find((x) => x.name === idx.model)!;
    const cols = idx.fields.map((f) => {
      const field = m.fields.find((x) => x.name === f.name)!;
      return field.dbName ?? field.name;
    });
    const suffix = { id: 'pkey', unique: 'key', normal: 'idx' }[idx.type];
    const name = idx.dbName ?? (idx.type === 'id' ? `${table(m)}_pkey` : `${table(m)}_${cols.join('_')}_${suffix}`);
    schema.indexes[name] = `${table(m)}(${cols.join(', ')}) ${{ id: 'primary', unique: 'unique', normal: 'index' }[idx.type]}`;
  }
  return schema;
}

/** The live database's tables (those schema.prisma models; not the migration ledger). */
export async function schemaFromDatabase(databaseUrl: string, ignoreTables = ['schema_migrations']): Promise<Schema> {
  const pg = new PgClient({ connectionString: databaseUrl });
  await pg.connect();
  try {
    const schema: Schema = { columns: {}, indexes: {} };
    const cols = await pg.query(
      `
      SELECT c.table_name, c.column_name, c.is_nullable, c.column_default, c.data_type, c.udt_name,
             c.character_maximum_length, c.datetime_precision,
             (SELECT e.data_type FROM information_schema.element_types e
               WHERE e.object_name = c.table_name AND e.object_type = 'TABLE' AND e.collection_type_identifier = c.dtd_identifier) AS element_type
      FROM information_schema.columns c WHERE c.table_schema = 'public' AND NOT (c.table_name = ANY($1))`,
      [ignoreTables],
    );
    for (const c of cols.rows) {
      let type: string = c.data_type;
      if (type === 'character varying') type = `character varying(${c.character_maximum_length})`;
      if (type.startsWith('timestamp')) type = `${type}(${c.datetime_precision})`;
      if (type === 'ARRAY') type = `${c.element_type}[]`;
      const def: string | null = c.column_default;
      schema.columns[`${c.table_name}.${c.column_name}`] = {
        type,
        nullable: c.is_nullable === 'YES',
        default:
          def === null
            ? null
            : def.startsWith('nextval(')
              ? 'autoincrement'
              : def === 'CURRENT_TIMESTAMP'
                ? 'now'
                : (def as 'now'),
      };
    }
    const idx = await pg.query(
      `
      SELECT i.relname AS name, t.relname AS table_name, ix.indisunique AS is_unique, ix.indisprimary AS is_primary,
             array_agg(a.attname::text ORDER BY k.ord) AS columns
      FROM pg_index ix
      JOIN pg_class i ON i.oid = ix.indexrelid
      JOIN pg_class t ON t.oid = ix.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
      WHERE n.nspname = 'public' AND NOT (t.relname = ANY($1))
      GROUP BY i.relname, t.relname, ix.indisunique, ix.indisprimary`,
      [ignoreTables],
    );
    for (const r of idx.rows) {
      schema.indexes[r.name] =
        `${r.table_name}(${r.columns.join(', ')}) ${r.is_primary ? 'primary' : r.is_unique ? 'unique' : 'index'}`;
    }
    return schema;
  } finally {
    await pg.end();
  }
}
