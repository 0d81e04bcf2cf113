//! [`sqlx_dialect_glue!`]: the sqlx plumbing every dialect needs (binding [`Arg`]s, typed
//! row access, running statements on a transaction or a pool), written once as a macro
//! because it differs between drivers only in types and two codecs. Sqlx itself generates its
//! per-driver impls the same way; written with generic `Database` bounds instead, every
//! function would carry a dozen higher-ranked `Encode`/`Decode`/`Executor` bounds.
//!
//! [`Arg`]: crate::Arg

/// Generates, in a dialect crate (which must depend on `sqlx` with its driver, and on
/// `serde_json` with `raw_value`):
/// - `fn query(sql, args)`: a sqlx query with the arguments bound (text through
///   `encode_text`, times through `encode_time`);
/// - the row type `row` implementing [`SqlRow`](crate::SqlRow) (times through `decode_time`,
///   integers through `decode_int`);
/// - [`Exec`](crate::Exec) for the dialect: transactions commit, statements run on the
///   transaction, on the `reader` pool (reads) or on the `writer` pool (autocommit writes).
///
/// Errors go through the crate's `map_err(sqlx::Error) -> StoreError`.
#[doc(hidden)]
#[macro_export]
macro_rules! sqlx_dialect_glue {
    (
        dialect: $dialect:ty,
        db: $db:ty,
        row: $row:ident,
        reader: $reader:ident,
        writer: $writer:ident,
        encode_text: $encode_text:expr,
        encode_time: $encode_time:expr,
        decode_time: $decode_time:expr,
        decode_int: $decode_int:expr $(,)?
    ) => {
        fn query(
            sql: $crate::Sql,
            args: ::std::vec::Vec<$crate::Arg>,
        ) -> sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments> {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in args {
                q = match a {
                    $crate::Arg::Uuid(u) => q.bind(u),
                    $crate::Arg::Text(t) => q.bind(t.map($encode_text)),
                    $crate::Arg::Int(i) => q.bind(i),
                    $crate::Arg::Bool(b) => q.bind(b),
                    $crate::Arg::Bytes(b) => q.bind(b),
                    $crate::Arg::Time(t) => q.bind(t.map($encode_time)),
                    $crate::Arg::Json(j) => q.bind(j.map(sqlx::types::Json)),
                };
            }
            q
        }

        /// A result row.
        #[derive(Debug)]
        pub struct $row(<$db as sqlx::Database>::Row);

        impl $row {
            fn get<'r, T: sqlx::Decode<'r, $db> + sqlx::Type<$db>>(
                &'r self,
                col: &str,
            ) -> ::std::result::Result<T, ::ordonis_core::StoreError> {
                sqlx::Row::try_get(&self.0, col).map_err(map_err)
            }
        }

        impl $crate::SqlRow for $row {
            fn uuid(&self, col: &str) -> ::std::result::Result<::uuid::Uuid, ::ordonis_core::StoreError> {
                self.get(col)
            }
            fn opt_text(
                &self,
                col: &str,
            ) -> ::std::result::Result<Option<String>, ::ordonis_core::StoreError> {
                self.get(col)
            }
            fn int(&self, col: &str) -> ::std::result::Result<i64, ::ordonis_core::StoreError> {
                ($decode_int)(&self.0, col).map_err(map_err)
            }
            fn bytes(&self, col: &str) -> ::std::result::Result<Vec<u8>, ::ordonis_core::StoreError> {
                self.get(col)
            }
            fn opt_time(
                &self,
                col: &str,
            ) -> ::std::result::Result<Option<::time::OffsetDateTime>, ::ordonis_core::StoreError> {
                ($decode_time)(&self.0, col)
            }
            fn json(
                &self,
                col: &str,
            ) -> ::std::result::Result<Box<::serde_json::value::RawValue>, ::ordonis_core::StoreError> {
                self.get::<sqlx::types::Json<Box<::serde_json::value::RawValue>>>(col)
                    .map(|sqlx::types::Json(v)| v)
            }
        }

        fn rows(v: Vec<<$db as sqlx::Database>::Row>) -> Vec<$row> {
            v.into_iter().map($row).collect()
        }

        #[$crate::__private::async_trait]
        impl $crate::Exec for $dialect {
            type Row = $row;
            type Tx = sqlx::Transaction<'static, $db>;

            async fn commit(&self, tx: Self::Tx) -> ::std::result::Result<(), ::ordonis_core::StoreError> {
                tx.commit().await.map_err(map_err)
            }

            async fn execute(
                &self,
                tx: &mut Self::Tx,
                sql: $crate::Sql,
                args: Vec<$crate::Arg>,
            ) -> ::std::result::Result<u64, ::ordonis_core::StoreError> {
                let done = query(sql, args).execute(&mut **tx).await.map_err(map_err)?;
                Ok(done.rows_affected())
            }

            async fn fetch(
                &self,
                tx: &mut Self::Tx,
                sql: $crate::Sql,
                args: Vec<$crate::Arg>,
            ) -> ::std::result::Result<Vec<$row>, ::ordonis_core::StoreError> {
                let got = query(sql, args).fetch_all(&mut **tx).await.map_err(map_err)?;
                Ok(rows(got))
            }

            async fn read(
                &self,
                sql: $crate::Sql,
                args: Vec<$crate::Arg>,
            ) -> ::std::result::Result<Vec<$row>, ::ordonis_core::StoreError> {
                let got = query(sql, args).fetch_all(&self.$reader).await.map_err(map_err)?;
                Ok(rows(got))
            }

            async fn write(
                &self,
                sql: $crate::Sql,
                args: Vec<$crate::Arg>,
            ) -> ::std::result::Result<Vec<$row>, ::ordonis_core::StoreError> {
                let got = query(sql, args).fetch_all(&self.$writer).await.map_err(map_err)?;
                Ok(rows(got))
            }

            async fn write_count(
                &self,
                sql: $crate::Sql,
                args: Vec<$crate::Arg>,
            ) -> ::std::result::Result<u64, ::ordonis_core::StoreError> {
                let done = query(sql, args).execute(&self.$writer).await.map_err(map_err)?;
                Ok(done.rows_affected())
            }
        }
    };
}
