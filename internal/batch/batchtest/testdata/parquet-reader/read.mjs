// Prints each Parquet file named on the command line as one JSON line: its name, row groups,
// key-value metadata and rows, read with hyparquet (zstd and snappy through hyparquet-compressors).
// A list of FLOAT is printed as the hex of its little-endian float32 bytes, so that the reader of
// the output compares bits: JSON numbers would lose -0.
import { basename } from 'node:path'
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'

for (const name of process.argv.slice(2)) {
  const file = await asyncBufferFromFile(name)
  const metadata = await parquetMetadataAsync(file)
  const floatLists = new Set()
  for (const rg of metadata.row_groups) {
    for (const { meta_data: m } of rg.columns) {
      if (m.type === 'FLOAT' && m.path_in_schema.length > 1) floatLists.add(m.path_in_schema[0])
    }
  }
  const rows = await parquetReadObjects({ file, compressors })
  for (const row of rows) {
    for (const [k, v] of Object.entries(row)) {
      if (typeof v === 'bigint') row[k] = Number(v)
      else if (floatLists.has(k) && v != null) row[k] = Buffer.from(new Float32Array(v).buffer).toString('hex')
    }
  }
  const kv = Object.fromEntries((metadata.key_value_metadata ?? []).map(({ key, value }) => [key, value]))
  console.log(JSON.stringify({ name: basename(name), row_groups: metadata.row_groups.length, metadata: kv, rows }))
}
